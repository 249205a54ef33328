// The public name of <herd/config/options.hpp>: applications include this one.
#pragma once

#include <herd/config/options.hpp>
#include <herd/config/option_types.hpp>
