#!/usr/bin/env python
"""Print the option reference generated from the schema, or ``--write`` it into README.md."""
import argparse
import os
import sys

from framework.docs import END, START, options_reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the reference in README.md")
    args = parser.parse_args()
    text = options_reference()
    if not args.write:
        print(text)
        return 0
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    with open(readme, encoding="utf-8") as fh:
        content = fh.read()
    head, _, rest = content.partition(START)
    _, _, tail = rest.partition(END)
    with open(readme, "w", encoding="utf-8") as fh:
        fh.write(head + text + tail)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
