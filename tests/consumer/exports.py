#!/usr/bin/env python3
"""libherd.so exports herd's API and nothing else of herd's; no fmt, spdlog or Boost.JSON code.

    tests/consumer/exports.py BUILD_ROOT/lib/libherd.so

libherd is built with -fvisibility=hidden (lib/meson.build) and HERD_API (lib/include/herd/export.hpp)
marks the public API. Besides it the library exports, on purpose or by force:
  - Asio and Boost.Process v2 (boost::asio::, boost::process::): compiled once inside libherd
    and shared with the application (lib/herd/detail/asio_export.hpp);
    and with them what Asio's headers bring along (Boost.System, Boost.DateTime, boost::
    throw_exception, the exception and shared-count helpers), declared there too;
  - type information, vtables and members of classes that their own headers declare visible
    (BOOST_SYMBOL_VISIBLE exceptions, spdlog's SPDLOG_API classes), so that an exception thrown
    in libherd is caught by type outside it;
  - instantiations of standard library templates (libstdc++ declares namespace std visible).
Anything else fails the test, one line per symbol.
"""
import re
import subprocess
import sys

# Everything of herd's that a consumer may link against: lib/include/herd/*.hpp. Parsing the
# command line (parse_command_line, validate, exec_defaults, parse_*) and exec mode (run_exec) are
# herd's own: its tools link them statically, and the shared library keeps them hidden.
API = re.compile(r"^herd::(run|Worker|UsageError|format_duration|"
                 r"DurationOption|InvalidOptionValue|duration_option|text_option|count_option)\b")
REQUIRED = ["herd::run(", "herd::Worker::heartbeat(", "herd::Worker::attach(", "herd::Worker::add_requests(",
            "herd::duration_option(", "typeinfo for herd::UsageError"]
INTERNAL = ["herd::parse_command_line(", "herd::run_exec(", "herd::exec_defaults(", "herd::validate("]
SHARED = re.compile(r"^(?:[\w:<>, *&]+ )?boost::(asio|process)::")
ASIO_CLOSURE = ("boost::system::", "boost::date_time::", "boost::posix_time::", "boost::gregorian::",
                "boost::exception_detail::", "boost::detail::sp_counted_base::", "boost::throw_exception<",
                "boost::source_location::", "boost::wrapexcept<")
# Declared visible by their own headers (SPDLOG_API, BOOST_SYMBOL_VISIBLE, BOOST_JSON_DECL)
VISIBLE_CLASSES = ("spdlog::logger::", "spdlog::pattern_formatter::", "boost::program_options::error",
                   "boost::program_options::invalid_option_value::", "boost::program_options::validation_error::",
                   "boost::bad_any_cast::", "boost::bad_function_call::", "boost::json::detail::default_resource::")
TYPE_DATA = re.compile(r"^(typeinfo|typeinfo name|vtable|VTT|construction vtable) for ")
THUNK = re.compile(r"^(non-virtual thunk to|virtual thunk to|guard variable for|TLS init function for|"
                   r"TLS wrapper function for) ")


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def subject(name):
    """A demangled name without the return type a function template's name starts with."""
    head = re.split(r"[<(]", name, maxsplit=1)[0]
    return name.split(" ", 1)[1] if " " in head else name


def scope(name):
    """The class (or namespace) a demangled function or variable belongs to: its name up to the
    last '::' outside template arguments and parameter lists."""
    depth, cut = 0, -1
    for i, ch in enumerate(name):
        if ch in "<(":
            if ch == "(" and depth == 0:
                break
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == ":" and depth == 0 and name[i:i + 2] == "::":
            cut = i
    head = name[:cut] if cut > 0 else ""
    # a function template's return type comes first: "void boost::throw_exception<...>"
    return head.split(" ", 1)[1] if " " in head.split("<", 1)[0] else head


def main():
    lib = sys.argv[1]
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True, check=True)
    mangled = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
    names = demangle(mangled)
    visible_types = {TYPE_DATA.sub("", n) for n in names if TYPE_DATA.match(n)}

    counts = {"herd API": 0, "asio/process": 0, "std templates": 0, "visible types": 0, "C": 0}
    bad = []
    for raw, name in zip(mangled, names):
        plain = THUNK.sub("", name)
        if not raw.startswith("_Z"):
            counts["C"] += 1   # asio's extern "C" thread and signal trampolines
        elif plain.startswith("herd::") or TYPE_DATA.sub("", plain).startswith("herd::"):
            if API.match(TYPE_DATA.sub("", plain)):
                counts["herd API"] += 1
            else:
                bad.append(f"herd internal symbol exported: {name}")
        elif SHARED.match(plain) or SHARED.match(TYPE_DATA.sub("", plain)):
            counts["asio/process"] += 1
        elif subject(plain).startswith(ASIO_CLOSURE):
            counts["asio/process"] += 1
        elif subject(plain).startswith(("std::", "__gnu_cxx::")):
            counts["std templates"] += 1
        elif TYPE_DATA.match(plain) or scope(plain) in visible_types or subject(plain).startswith(VISIBLE_CLASSES):
            counts["visible types"] += 1
        else:
            bad.append(f"exported, neither herd's API nor forced by a visible type: {name}")
    if not any(counts.values()):
        bad.append(f"{lib} exports nothing")
    for symbol in REQUIRED:
        if not any(n.startswith(symbol) for n in names):
            bad.append(f"API symbol not exported: {symbol}")
    for symbol in INTERNAL:
        if any(n.startswith(symbol) for n in names):
            bad.append(f"internal symbol exported: {symbol}")

    print(f"{lib}: {len(names)} exported symbols: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    for line in bad:
        print("FAIL: " + line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
