"""One review -> every output: the PDF report, DICOM SEG and SR, NIfTI label map, CSV and JSON.

``export_case`` (:mod:`.write_outputs`) builds the case's :class:`ReviewOutcome` from the
database (:mod:`.outcome_from_case`) and hands it to each writer, so all outputs hold the same
kept findings; files appear only complete (temporary names, then renames) and every export is
an audit event. Qt-free: the CLI and the GUI's Export dialog both call it.
"""
