"""Facial attributes beyond Rekognition's default ones (AgeRange, Smile, EyesOpen, ...).

* :mod:`.types`: the attributes, their values (frozen dataclasses on Rekognition's ranges), what
  an estimator sees of a face (:class:`~.types.FaceInput`) and the
  :class:`~.types.AttributeEstimator` Protocol.
* :mod:`.geometry`: estimators measured from dlib's 68 points (EyesOpen, MouthOpen, Smile), with
  thresholds fitted on labelled faces (``engine/calibration/attributes-geometry.json``).
* :mod:`.registry`: the estimators a worker can run (:data:`~.registry.ESTIMATORS`: the one
  place a new estimator is added), built once per engine, and asked per request for the
  attributes that request wants only.

Attributes are computed per request, only when asked for, and never stored. docs/attributes.md
says what each one is, how it is estimated and how well (with the command that measures it).
"""
