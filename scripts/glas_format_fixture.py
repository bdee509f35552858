"""Write a GlaS-format dataset (Warwick-QU layout: `<subset>_<n>.bmp`, `<subset>_<n>_anno.bmp` instance maps,
Grade.csv) whose content is the synthetic H&E generator's, with glands as instances. It is read through the
real GlaS loader (dataset=glas), so runs on it exercise a release's format end to end without the release.

    python scripts/glas_format_fixture.py OUT_DIR [--train 24] [--test 8] [--size 160]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from densebench.data.formats.synthetic import render


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--train", type=int, default=24)
    p.add_argument("--test", type=int, default=8)
    p.add_argument("--size", type=int, default=160)
    args = p.parse_args()
    base = args.out / "Warwick_QU_Dataset_(Released_2016_07_08)"
    base.mkdir(parents=True, exist_ok=True)
    names = [f"train_{i}" for i in range(1, args.train + 1)] + [f"testA_{i}" for i in range(1, args.test + 1)]
    rows = ["name,patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"]
    for i, name in enumerate(names):
        record = render(4321, i, (args.size, args.size))
        glands = (record.mask == 2).astype(np.uint8)
        _, instances = cv2.connectedComponents(glands)  # one id per gland, 0 = background
        Image.fromarray(record.image).save(base / f"{name}.bmp")
        Image.fromarray(instances.astype(np.uint8)).save(base / f"{name}_anno.bmp")
        rows.append(f"{name},{i // 2}, benign, adenomatous")
    (base / "Grade.csv").write_text("\n".join(rows) + "\n")
    print(f"wrote {len(names)} GlaS-format images to {base}")


if __name__ == "__main__":
    main()
