// USR2's pre-flight check: the new binary run with --check (and our hand-over version) before the
// manager execs it. One check in flight: its process, in a process group of its own, at the lowest
// priority and with no signal blocked; its stderr (the first 4 KiB) and a 10 s bound. Internal to
// the manager (manager_rollout.cpp starts, finishes and abandons it).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/process/v2/process.hpp>

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace herd::detail {

/// How a check ended: its exit code (255 if it could not be waited for), or killed at the bound.
struct PreflightOutcome {
    int exit_code = 0;
    bool timed_out = false;
    std::string output;   // what it wrote to stderr, at most its first 4 KiB (give or take one read)
};

class Preflight {
public:
    /// A --check that hangs must not hold the upgrade (and the next USR2) forever.
    static constexpr std::chrono::milliseconds timeout = std::chrono::seconds(10);
    using Finished = std::function<void(const PreflightOutcome&)>;

    explicit Preflight(boost::asio::io_context& io);
    ~Preflight();
    Preflight(const Preflight&) = delete;
    Preflight& operator=(const Preflight&) = delete;

    /// Runs `binary args...`; `finished` is called once, from the io_context, when the check has
    /// exited and its stderr is closed (or it was killed at the bound). It may destroy this object.
    /// Throws if the process cannot be started.
    void start(const std::string& binary, const std::vector<std::string>& args, Finished finished);
    /// Kills the check with whatever it started (its process group); `finished` is not called.
    /// Destroy the object next: its pending handlers then end without effect.
    void abandon();
    /// The check's pid while one runs (-1 before start): Boost.Process waits for it, nobody else may.
    int pid() const;

private:
    void read_output();
    void finish_if_done();

    boost::asio::readable_pipe err_;
    boost::asio::steady_timer timer_;
    std::unique_ptr<boost::process::v2::process> process_;
    std::array<char, 1024> buffer_{};
    std::string output_;
    std::optional<int> exit_code_;
    bool output_done_ = false;
    bool timed_out_ = false;
    Finished finished_;
};

}  // namespace herd::detail
