"""Footage requests, approvals, extraction and evidence packages."""
