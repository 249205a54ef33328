// Included first in every libherd translation unit (-include, lib/meson.build), never installed.
//
// Asio and Boost.Process v2 are compiled once, inside libherd (BOOST_ASIO_SEPARATE_COMPILATION,
// BOOST_PROCESS_V2_SEPARATE_COMPILATION), and a consumer compiled with the same definitions uses
// that implementation: libherd.so must export it, although everything else is hidden. Declaring
// them all under default visibility before any libherd code includes them keeps one copy of each
// in the process. Two copies sharing one io_context (Worker::attach) would not work: each keeps
// its own thread-local call stack, and the scheduler of one dereferences the other's null entry.
#pragma once

#pragma GCC visibility push(default)
#include <boost/asio.hpp>
#include <boost/process/v2.hpp>
#pragma GCC visibility pop
