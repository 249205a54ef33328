// herd::Worker is public: <herd/worker.hpp>. herd's own code includes either name.
#pragma once

#include <herd/worker.hpp>
