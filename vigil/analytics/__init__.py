"""Motion, tamper, image quality and alerts."""
