#include <herd/core/names.hpp>

namespace herd {

std::string worker_role(std::string_view pool, int slot)
{
    const std::string_view word = pool == default_pool || pool.empty() ? std::string_view("worker") : pool;
    return std::string(word) + "[" + (slot >= 0 ? std::to_string(slot) : std::string("?")) + "]";
}

std::string worker_title(std::string_view name, std::string_view pool, int slot, unsigned generation)
{
    return std::string(name) + ": " + worker_role(pool, slot) + " gen " + std::to_string(generation);
}

}  // namespace herd
