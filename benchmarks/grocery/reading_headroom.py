"""How much reading the label can add on Grocery Store val: per photo, whether the visual search, the words read
alone, and the fused search put the right product first. The photos the visual search gets wrong and the words
get right bound what any fusion of these reads can add.

Usage: python benchmarks/grocery/reading_headroom.py BUNDLE QUERIES_CSV OUT_JSON [DETECTOR RECOGNISER]
(DETECTOR RECOGNISER: other ONNX files, with cards, that read the query photos instead of the bundle's own, such as
the INT8 ones of benchmarks/reading/quantize_ocr.py; the catalogue's label index stays as the bundle has it)
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.reading.reader import LabelReader
from runtime.retriever import Retriever
from runtime.tools.evaluate import read_queries


def main(bundle: Path, queries_csv: Path, out: Path, readers: Sequence[Path] = ()) -> None:
    queries = read_queries(queries_csv)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with Retriever.open(bundle) as retriever:
        if readers:
            retriever.reader.close()
            retriever.reader = LabelReader.open(*readers)
        labels = retriever.bundle.labels
        first_row = {int(p): int(labels.rows_of(p)[0]) for p in range(len(labels))}
        groups = [retriever.bundle.catalog[first_row[p]].group for p in range(len(labels))]
        descriptors, words = retriever.describe([q.image for q in queries], ocr=True)
        visual = retriever.search(descriptors)
        fused = retriever.search(descriptors, words=words)
        for query, read, v, f in zip(queries, words, visual, fused):
            scores = labels.score([(w.text, w.confidence) for w in read])
            text_right = bool(scores.any()) and groups[int(np.argmax(scores))] == query.group
            visual_right, fused_right = v[0].group == query.group, f[0].group == query.group
            for subset in (query.subset, "all"):
                c = counts[subset]
                c["photos"] += 1
                c["with_text"] += bool(read)
                c["visual_right"] += visual_right
                c["text_right"] += text_right
                c["fused_right"] += fused_right
                c["visual_wrong_text_right"] += (not visual_right) and text_right
                c["visual_right_text_wrong"] += visual_right and bool(scores.any()) and not text_right
    report = {"bundle": str(bundle), "subsets": {name: dict(c) for name, c in sorted(counts.items())}}
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, c in sorted(counts.items()):
        print(f"{name:10} {c['photos']:3} photos, {c['with_text']:3} with text: product top-1 visual {c['visual_right']}, "
              f"words alone {c['text_right']}, fused {c['fused_right']}; visual wrong and words right "
              f"{c['visual_wrong_text_right']} (the most fusion can add), visual right and words wrong "
              f"{c['visual_right_text_wrong']}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), [Path(p) for p in sys.argv[4:6]])
