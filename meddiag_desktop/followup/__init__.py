"""Follow-up: an earlier study of the same patient beside the current one, registered, its
lesions matched to the current ones, their growth and the RECIST 1.1 response worked out.

Qt-free; nothing is imported here (SimpleITK and the database are heavy), so a widget can take
the one module it needs. Import what you use from its module:

- ``registration``: ``register(current, prior, options, progress, cancelled)`` ->
  ``RegistrationResult`` (rigid, then affine if asked; Mattes mutual information, multi-
  resolution on a coarse isotropic copy; cancel from a worker by a flag).
- ``transform``: ``StoredTransform`` (serialisable: type, parameters, fixed parameters;
  ``to_prior``/``to_current`` map LPS points, ``resample_to_current`` maps label maps).
- ``matching``: ``match_lesions`` (overlap first, then size-scaled centroid distance, one to
  one by the Hungarian method) and ``apply_overrides`` (the reader's link, unlink, new, gone).
- ``numbers``: per-track volume and axes at both times, change, volume doubling time.
- ``recist``: target proposal (5, 2 per organ, >= 10 mm) and the response with its rule.
- ``comparison``: ``compare_cases(db, case_id, prior_case_id, ...)``, the whole flow from the
  database and back (what ``meddiag compare`` and the app's worker run); ``load_comparison``.
- ``priors``: (in :mod:`meddiag_desktop.db.priors`) earlier cases of the same patient.
- ``errors``: ``FollowUpError`` and ``RegistrationCancelled``.
"""
