"""Vision engine: motion, tamper, image quality, redaction. No Django.

Modules (import them directly; this package imports nothing heavy by itself):

* :mod:`vigil.vision.decode` - PyAV decoding of files and live packets to luma frames;
* :mod:`vigil.vision.pipeline` - :class:`~vigil.vision.pipeline.CameraAnalyser`, the
  per-camera entry point (motion + tamper + periodic quality on a shared downscale);
* :mod:`vigil.vision.motion` - motion detector and motion events;
* :mod:`vigil.vision.tamper` - covered / blurred / moved / dark / frozen / video lost;
* :mod:`vigil.vision.quality` - image quality samples and the camera-day report;
* :mod:`vigil.vision.redact` - face redaction for released footage, watermark;
* :mod:`vigil.vision.evaluate` - accuracy on the labelled set (``python -m``);
* :mod:`vigil.vision.synthetic`, :mod:`vigil.vision.footage` - evaluation helpers.

See ``docs/analytics.md`` for the method and the measured accuracy.
"""
