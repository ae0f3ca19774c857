#!/usr/bin/env python
"""Print the option reference generated from the schema (the BasicSR and traiNNer-redux tables from
framework/basicsr_names.py, the network presets from framework/archs/presets.py), or ``--write`` them into
README.md."""
import argparse
import os
import sys

from framework.docs import generated_sections


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="replace the reference in README.md")
    args = parser.parse_args()
    sections = [(start, end, make()) for start, end, make in generated_sections()]
    if not args.write:
        print("\n\n".join(text for _, _, text in sections))
        return 0
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    with open(readme, encoding="utf-8") as fh:
        content = fh.read()
    for start, end, text in sections:
        head, _, rest = content.partition(start)
        _, _, tail = rest.partition(end)
        content = head + text + tail
    with open(readme, "w", encoding="utf-8") as fh:
        fh.write(content)
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
