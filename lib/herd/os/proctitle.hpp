// Process titles ("hello-http: manager", "hello-http: worker[2] gen 1") as ps and top show them.
//
// Linux has no setproctitle(3): /proc/PID/cmdline is read straight from the memory that held argv
// at exec, and the environment strings follow it. init() takes that whole contiguous area over:
// it moves the environment and argv strings to heap copies (so getenv, setenv and the program's
// own argv keep working) and remembers the area; set() then writes the title into it. Call init()
// first thing in main, before any thread starts and before anything keeps pointers into argv.
#pragma once

#include <string_view>

namespace herd::proctitle {

/// Take over the argv and environment area so set() can rewrite it; a second call does nothing.
void init(int argc, char** argv);

/// Show `title` in ps (argv area, if init() ran) and as the thread name (first 15 chars).
void set(std::string_view title);

}  // namespace herd::proctitle
