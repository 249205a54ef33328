// The public name of <herd/manager/hooks.hpp>: applications include this one.
#pragma once

#include <herd/manager/hooks.hpp>
