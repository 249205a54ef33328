// The one translation unit that compiles Asio's and Process v2's separately compiled parts
// (BOOST_ASIO_SEPARATE_COMPILATION and BOOST_PROCESS_V2_SEPARATE_COMPILATION are project-wide).
#include <boost/asio/impl/src.hpp>
#include <boost/process/v2/src.hpp>
