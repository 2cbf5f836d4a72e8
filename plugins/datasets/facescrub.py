"""``facescrub``: a folder of downloaded FaceScrub images, ``<root>/<person>/*.jpg``.

As in the face-hashing papers, 5 images of each person are queries; validation images
(``val``, default 5) are carved from the rest, which are train and gallery. FaceScrub
is distributed as URLs, so downloads differ between users: dead links saved as HTML are
the usual corrupt files (skipped with a logged count by default, ``on_corrupt=refuse``
to stop), and re-uploads of one photo are the usual duplicates (the overlap check
refuses the split; ``overlap=drop`` drops the val/query copies and records them).
Images are used as given (``crop=1.0``: the centred square of the whole image); pass a
smaller ``crop`` for uncropped downloads.
"""

from __future__ import annotations

from plugins.datasets.folder import image_tree_loader

load_facescrub = image_tree_loader(
    "facescrub", val=5, query=5, doc="Downloaded FaceScrub, <root>/<person>/*.jpg, 5 query images per person."
)
