// The public name is <herd/option_types.hpp>; herd's own code includes either.
#pragma once

#include <herd/option_types.hpp>
