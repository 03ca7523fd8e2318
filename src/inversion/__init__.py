"""Finding the code z of an image for any trained generator, and editing images through their codes.

:mod:`~src.inversion.adapters` (one view of every family's G, E and D), :mod:`~src.inversion.reconstruction` (the
pixel + feature distance), :mod:`~src.inversion.optimize` and :mod:`~src.inversion.encoder` (the ways of finding
z), :mod:`~src.inversion.methods` (encoder, optimize, hybrid), :mod:`~src.inversion.editing` (attribute vectors and
edits under a user constraint). The entry points are ``src.invert`` and ``src.edit``.
"""
