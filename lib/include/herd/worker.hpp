// The public name of <herd/worker/worker.hpp>: applications include this one.
#pragma once

#include <herd/worker/worker.hpp>
