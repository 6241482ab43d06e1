"""Live wall and playback."""
