"""The two ways a file's image data can disagree with what its header declares, in words.

A header that declares *less* than the file holds is as dangerous as one that declares more:
the reader takes the first bytes it was promised and ignores the rest, so a NIfTI whose
``datatype`` says uint8 over int16 data, or a MetaImage ``DimSize`` one row short, loaded with
every voxel after the first row misplaced (issue 16). One wording for NIfTI, MetaImage and NRRD.
"""

from __future__ import annotations


def surplus_problem(held: int, declared: int) -> str:
    """Why ``held`` bytes of image data cannot be read by a header declaring ``declared``."""
    return (
        f"holds {held - declared:,} bytes more image data than its header declares "
        f"({held:,}, not {declared:,}): its sizes or voxel type do not match its data"
    )


def size_problem(held: int, declared: int, compressed: bool) -> str:
    """Empty when the image data is exactly what the header declares; else what is wrong."""
    if held > declared:
        return surplus_problem(held, declared)
    if held < declared:
        what = "its compressed data holds" if compressed else "it holds"
        return (
            f"is truncated: {what} {held:,} of the {declared:,} bytes of image data its header "
            "declares"
        )
    return ""
