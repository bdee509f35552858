"""Architecture families; each module registers its builders in `densebench.backbones.BACKBONES`."""
