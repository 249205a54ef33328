// HERD_API marks herd's public API: the only symbols libherd.so exports besides Asio and
// Boost.Process, whose implementation consumers share (docs/tutorial.md, "Installed, with pkg-config").
// libherd is compiled with -fvisibility=hidden, so everything unmarked (herd's internals,
// Boost.JSON, the fmt and spdlog instantiations) stays inside the library and cannot clash
// with a consumer's own copy. In a static build the marks change nothing.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define HERD_API __attribute__((visibility("default")))
#else
#define HERD_API
#endif
