"""Vision engine: motion, tamper, image quality, redaction. No Django."""
