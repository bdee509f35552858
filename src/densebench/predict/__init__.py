"""`densebench predict`: apply a finished run to new images and whole-slide images."""
