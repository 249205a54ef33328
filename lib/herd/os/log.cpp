// Logging: spdlog set-up, role and pid in the pattern, a reopenable close-on-exec file sink.
#include <herd/os/log.hpp>

#include <herd/os/fd.hpp>

#include <spdlog/details/file_helper.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace herd::log {

namespace {

struct LevelName {
    std::string_view name;
    spdlog::level::level_enum value;
};

constexpr LevelName levels[] = {
    {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},       {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},   {"error", spdlog::level::err},         {"critical", spdlog::level::critical},
    {"off", spdlog::level::off},
};

/// Check that `path` can be opened for appending, so that a bad path is one clear error (spdlog
/// would retry for 50 ms, create missing directories, and report in its own words).
void check_writable(const std::string& path, const char* what)
{
    const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) throw std::system_error(errno, std::generic_category(), std::string(what) + " " + path);
}

/// A file sink that can reopen its file (TOOLCHAIN.md (A)); the file is FD_CLOEXEC.
template <class Mutex>
class ReopenFileSink final : public spdlog::sinks::base_sink<Mutex> {
public:
    explicit ReopenFileSink(const std::string& path) : file_(close_on_exec())
    {
        check_writable(path, "cannot open log file");
        file_.open(path, false);
    }

    void reopen()
    {
        std::lock_guard<Mutex> lock(this->mutex_);
        // Check first: file_helper closes the old file before it tries the new one.
        check_writable(file_.filename(), "cannot reopen log file");
        file_.reopen(false);
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        spdlog::memory_buf_t formatted;
        this->formatter_->format(msg, formatted);
        guarded([&] { file_.write(formatted); });   // counted by the flush that follows every line
    }

    void flush_() override
    {
        if (!guarded([&] { file_.flush(); })) {
            ++dropped_;
            return;
        }
        failing_ = false;
        if (dropped_ == 0) return;
        // Written again: the first line says how many were lost meanwhile
        const std::string note = std::to_string(dropped_) + " log lines could not be written to " + file_.filename() +
                                 " and were dropped";
        dropped_ = 0;
        spdlog::memory_buf_t formatted;
        this->formatter_->format(spdlog::details::log_msg("herd", spdlog::level::warn, note), formatted);
        guarded([&] {
            file_.write(formatted);
            file_.flush();
        });
    }

private:
    // A log file that cannot be written (a full disk: ENOSPC) costs log lines, never the process
    // that logs: the first failure of a series is said on stderr, once, and the line after the
    // next successful write counts the lines that were dropped. spdlog would say it on stderr
    // once a second for as long as it lasts.
    template <class Write>
    bool guarded(Write&& write)
    {
        try {
            write();
            return true;
        } catch (const spdlog::spdlog_ex& e) {
            if (!failing_) {
                const std::string line = std::string(e.what()) + "; log lines are dropped until it can be written again\n";
                [[maybe_unused]] const auto n = ::write(2, line.data(), line.size());
            }
            failing_ = true;
            return false;
        }
    }

    static spdlog::file_event_handlers close_on_exec()
    {
        // Debian's spdlog opens files with plain fopen: without this, every exec'd child inherits the log.
        spdlog::file_event_handlers handlers;
        handlers.after_open = [](const spdlog::filename_t&, std::FILE* file) {
            ::fcntl(::fileno(file), F_SETFD, FD_CLOEXEC);
        };
        return handlers;
    }

    spdlog::details::file_helper file_;
    bool failing_ = false;        // the last flush failed, or a write since
    std::uint64_t dropped_ = 0;   // lines not written since the last that was
};

using FileSink = ReopenFileSink<std::mutex>;

/// A sink writing to a descriptor of its own: a worker's copy of the stderr it was born with.
class FdSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit FdSink(int fd) : fd_(fd) {}

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override
    {
        spdlog::memory_buf_t formatted;
        this->formatter_->format(msg, formatted);
        for (std::size_t off = 0; off < formatted.size();) {
            const ssize_t n = ::write(fd_.get(), formatted.data() + off, formatted.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            off += std::size_t(n);
        }
    }
    void flush_() override {}

private:
    UniqueFd fd_;
};

std::shared_ptr<FileSink> file_sink;   // null when logging to stderr

// "manager 1234", "worker[2] 1240": read by the %* flag at format time, so a worker sets its
// role right after fork with one snprintf, without allocating or rebuilding the formatter.
char role_text[96] = "herd";

class RoleFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override
    {
        dest.append(role_text, role_text + std::strlen(role_text));
    }
    std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<RoleFlag>(); }
};

std::unique_ptr<spdlog::formatter> make_formatter()
{
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<RoleFlag>('*').set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%*] [%l] %v");
    return formatter;
}

spdlog::level::level_enum spdlog_level(std::string_view name)
{
    for (const LevelName& level : levels)
        if (level.name == name) return level.value;
    throw std::invalid_argument("unknown log level '" + std::string(name) + "' (expected one of " + level_names() + ")");
}

}  // namespace

void setup(const std::string& level, const std::string& file, const std::string& role)
{
    const spdlog::level::level_enum threshold = spdlog_level(level);
    std::shared_ptr<FileSink> new_file_sink;
    spdlog::sink_ptr sink;
    if (file.empty()) {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    } else {
        new_file_sink = std::make_shared<FileSink>(file);
        sink = new_file_sink;
    }

    auto logger = std::make_shared<spdlog::logger>("herd", std::move(sink));
    logger->set_level(threshold);
    logger->flush_on(spdlog::level::trace);
    logger->set_formatter(make_formatter());
    set_role(role);
    spdlog::set_default_logger(std::move(logger));
    file_sink = std::move(new_file_sink);
}

void set_role(const std::string& role)
{
    std::snprintf(role_text, sizeof role_text, "%s %d", role.c_str(), int(::getpid()));
}

static_assert(int(Level::trace) == spdlog::level::trace && int(Level::info) == spdlog::level::info &&
              int(Level::warn) == spdlog::level::warn && int(Level::off) == spdlog::level::off);

Level parse_level(std::string_view name)
{
    return Level(int(spdlog_level(name)));   // the same order as spdlog's
}

void write_as(const std::string& role, int pid, Level level, std::string_view text)
{
    // The role is read when the line is formatted: swapped in for this one line only.
    char own[sizeof role_text];
    std::memcpy(own, role_text, sizeof own);
    std::snprintf(role_text, sizeof role_text, "%s %d", role.c_str(), pid);
    try {
        spdlog::log(spdlog::level::level_enum(int(level)), "{}", text);
    } catch (...) {
    }
    std::memcpy(role_text, own, sizeof own);
}

void keep_stderr()
{
    if (file_sink) return;
    const int fd = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) return;
    auto logger = spdlog::default_logger();
    logger->sinks().assign({std::make_shared<FdSink>(fd)});
    logger->set_formatter(make_formatter());
}

void reopen() noexcept
{
    if (!file_sink) return;
    // Called from the manager loop and from workers on USR1: a failure must not end either.
    try {
        file_sink->reopen();
    } catch (const std::exception& e) {
        spdlog::error("{}, still writing to the old file", e.what());
    }
}

std::string level_names()
{
    std::string names;
    for (const LevelName& level : levels) {
        if (!names.empty()) names += ", ";
        names += level.name;
    }
    return names;
}

}  // namespace herd::log
