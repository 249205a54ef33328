// The hand-over record's tokens (upgrade.hpp describes the record): times, numbers, names with
// spaces as one token, reasons, phases and stages. Shared by its encoder and its decoder.
#pragma once

#include <herd/core/policy.hpp>
#include <herd/core/supervisor.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>

namespace herd::detail {

/// steady_clock nanoseconds, and back.
std::int64_t ns(TimePoint t);
TimePoint at(std::int64_t value);

/// A time or "-" for none, and back.
std::string opt_ns(const std::optional<TimePoint>& t);
std::optional<TimePoint> opt_at(const std::string& text);

/// The whole of `text` as a number; throws std::invalid_argument.
std::int64_t number(std::string_view text);

/// The rest of the line, leading blanks skipped: free text (paths, reasons, names).
std::string rest_of(std::istringstream& in);

/// `text` with every `from` replaced by `to`: "max age" travels as "max_age".
std::string replaced(std::string text, char from, char to);

/// "max_age", and back; throws std::invalid_argument for a reason it does not know.
std::string reason_key(Reason reason);
Reason reason_from(const std::string& key);

/// "running", "stopping_graceful", "stopping_fast", and back.
const char* phase_key(Phase phase);
Phase phase_from(const std::string& key);

/// to_string(PoolStage) back.
PoolStage stage_from(const std::string& key);

/// "KEY NAME_WITH_UNDERSCORES N" lines: counters by name (exits by classification, rollouts by result).
void write_counts(std::ostream& out, const char* key, const std::map<std::string, std::uint64_t>& counts);
void read_count(std::istream& in, std::map<std::string, std::uint64_t>& counts);

}  // namespace herd::detail
