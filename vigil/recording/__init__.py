"""Recorder nodes, segment catalog, gaps and camera health."""
