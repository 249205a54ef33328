#include <herd/core/sampling.hpp>

#include <algorithm>

namespace herd {

Duration sample_tick(std::size_t workers, Duration period, Duration min_tick)
{
    if (workers == 0 || period.count() <= 0) return std::max(period, min_tick);
    const Duration spread = period / static_cast<Duration::rep>(workers);
    return std::clamp(spread, std::min(min_tick, period), period);
}

std::size_t samples_per_tick(std::size_t workers, Duration period, Duration tick)
{
    if (workers == 0) return 0;
    if (period.count() <= 0 || tick >= period) return workers;
    const auto t = static_cast<std::size_t>(std::max<Duration::rep>(tick.count(), 0));
    const auto p = static_cast<std::size_t>(period.count());
    return std::clamp<std::size_t>((workers * t + p - 1) / p, 1, workers);
}

SampleRange next_samples(std::size_t cursor, std::size_t size, std::size_t count)
{
    if (size == 0) return {};
    const std::size_t first = cursor < size ? cursor : 0;
    const std::size_t n = std::min(count, size);
    return {first, n, (first + n) % size};
}

}  // namespace herd
