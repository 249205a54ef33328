// The hooks are public: <herd/hooks.hpp>. herd's own code includes either name.
#pragma once

#include <herd/hooks.hpp>
