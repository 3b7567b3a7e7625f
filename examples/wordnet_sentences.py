#!/usr/bin/env python3
"""WordNet usage examples, one per line: the double-quoted strings after '|' in WordNet's data.{noun,verb,adj,adv}.

Debian: apt-get install -y --no-install-recommends wordnet-base   (puts the files in /usr/share/wordnet)
Usage: python examples/wordnet_sentences.py [WORDNET_DIR] > wordnet.txt
About 48,000 short modern sentences (mean ~34 characters), close to the paper's 32-character setting.
"""

import re
import sys
from pathlib import Path

QUOTED = re.compile(r'"([^"]+)"')


def usage_examples(folder: Path):
    for part in ("noun", "verb", "adj", "adv"):
        with open(folder / f"data.{part}", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:   # the licence header, or no gloss
                    continue
                gloss = line.split("|", 1)[1]
                for example in QUOTED.findall(gloss):
                    example = " ".join(example.split())
                    if example:
                        yield example


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/wordnet")
    if not (folder / "data.noun").is_file():
        print(f"error: {folder}/data.noun not found", file=sys.stderr)
        print("hint: apt-get install -y --no-install-recommends wordnet-base", file=sys.stderr)
        return 3
    for example in usage_examples(folder):
        print(example)
    return 0


if __name__ == "__main__":
    sys.exit(main())
