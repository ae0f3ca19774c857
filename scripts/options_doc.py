#!/usr/bin/env python
"""Print the generated parts of docs/ (the option reference from the schema, the BasicSR and traiNNer-redux
tables from framework/basicsr_names.py, the network presets from framework/archs/presets.py), or ``--write``
each into its file."""
import argparse
import os
import sys

from framework.docs import generated_sections

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the generated parts in their docs/ files")
    args = parser.parse_args()
    sections = [(section, section.make()) for section in generated_sections()]
    if not args.write:
        print("\n\n".join(text for _, text in sections))
        return 0
    for path in dict.fromkeys(section.path for section, _ in sections):
        full = os.path.join(REPO, path)
        with open(full, encoding="utf-8") as fh:
            content = fh.read()
        for section, text in sections:
            if section.path != path:
                continue
            head, found, rest = content.partition(section.start)
            _, found_end, tail = rest.partition(section.end)
            if not (found and found_end):
                print(f"error: {path}: the markers {section.start!r} ... {section.end!r} are missing", file=sys.stderr)
                return 2
            content = head + text + tail
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(content)
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
