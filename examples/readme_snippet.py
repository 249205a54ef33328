#!/usr/bin/env python3
"""Write the first C++ block of README.md's section "Writing a server" to a file, so the suite
builds and runs the worker the README shows.  readme_snippet.py README.md OUT.cpp"""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
section = text.split("\n## Writing a server\n", 1)
if len(section) != 2:
    sys.exit("readme_snippet: README.md has no section 'Writing a server'")
block = re.search(r"```cpp\n(.*?)```", section[1], re.S)
if not block or "herd::main" not in block.group(1):
    sys.exit("readme_snippet: the section's first C++ block is not a whole server")
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write("// Generated from README.md (section 'Writing a server') by examples/readme_snippet.py\n")
    out.write(block.group(1))
