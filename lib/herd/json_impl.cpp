// Boost.JSON, compiled once inside libherd (its own translation unit, so that a program that
// compiles Boost.JSON itself still links: the linker then takes no copy from here).
#include <boost/json/src.hpp>
