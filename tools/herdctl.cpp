// herdctl: the control client (DESIGN.md §6). The thin shell around herdctl_core: connect to the
// manager's unix socket, send one request line, read one answer line before the deadline, print, exit.
#include "herdctl_core.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

/// A failure to report in one line, exit 1.
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// A file descriptor, closed with its owner.
struct UniqueFd {
    int fd = -1;
    ~UniqueFd()
    {
        if (fd >= 0) ::close(fd);
    }
};

/// What is at `path`, for the line that says why a connect failed.
herdctl::PathFacts facts_of(const std::string& path)
{
    using herdctl::FileType;
    herdctl::PathFacts facts;
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        facts.stat_error = errno;
        const auto slash = path.rfind('/');
        const std::string parent = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
        struct stat dir{};
        facts.parent_exists = !(facts.stat_error == ENOENT && ::stat(parent.c_str(), &dir) != 0 && errno == ENOENT);
        return facts;
    }
    facts.uid = st.st_uid;
    facts.mode = st.st_mode & 07777;
    facts.type = S_ISSOCK(st.st_mode)  ? FileType::socket
                 : S_ISREG(st.st_mode) ? FileType::regular
                 : S_ISDIR(st.st_mode) ? FileType::directory
                 : S_ISFIFO(st.st_mode) ? FileType::fifo
                 : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? FileType::device
                                                             : FileType::other;
    return facts;
}

/// One exchange with the manager, all of it within the request's timeout.
class Connection {
public:
    explicit Connection(const herdctl::Request& request)
        : path_(request.control),
          timeout_(request.timeout),
          deadline_(request.timeout.count() == 0 ? std::nullopt : std::optional(Clock::now() + request.timeout))
    {
        // Connect; a full backlog (a wedged manager) waits at most until the deadline
        fd_.fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_.fd < 0) fail("cannot create a socket", errno);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        if (path_.size() >= sizeof address.sun_path) fail("cannot connect to " + path_, ENAMETOOLONG);
        std::memcpy(address.sun_path, path_.c_str(), path_.size() + 1);
        if (deadline_) {
            const timeval limit = remaining_timeval();
            ::setsockopt(fd_.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
        }
        if (::connect(fd_.fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            const int error = errno;
            // EAGAIN: the backlog stayed full until the deadline
            if (error == EAGAIN) fail("cannot connect to " + path_ + " within " + timeout_text(), error);
            throw Failure(herdctl::connect_failure(path_, error, facts_of(path_)));
        }
    }

    void send(std::string_view line)
    {
        while (!line.empty()) {
            wait_for(POLLOUT, "no answer from " + path_);
            const ssize_t n = ::send(fd_.fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            // A manager that refuses us says why and closes: read that rather than report EPIPE
            if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return;
            if (n < 0 && errno != EINTR && errno != EAGAIN) fail("cannot send to " + path_, errno);
            if (n > 0) line.remove_prefix(static_cast<std::size_t>(n));
        }
    }

    /// The answer line, without its '\n'.
    std::string read_line()
    {
        std::string answer;
        while (answer.find('\n') == std::string::npos) {
            wait_for(POLLIN, "no answer from " + path_);
            if (!receive(answer)) throw Failure("the manager closed " + path_ + " before answering");
        }
        return answer.substr(0, answer.find('\n'));
    }

    /// After stop: return once the manager has closed the socket (anything else it sends is ignored).
    void wait_for_close()
    {
        std::string ignored;
        do {
            ignored.clear();
            wait_for(POLLIN, "the manager answered but had not closed " + path_);
        } while (receive(ignored));
    }

private:
    /// Append what is there; false at end of file (a reset connection ends it too).
    bool receive(std::string& into)
    {
        char buffer[65536];
        ssize_t n = 0;
        do n = ::recv(fd_.fd, buffer, sizeof buffer, MSG_DONTWAIT);
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN) return true;   // woken without data
        if (n < 0 && errno != ECONNRESET) fail("cannot read from " + path_, errno);
        if (n <= 0) return false;
        into.append(buffer, static_cast<std::size_t>(n));
        return true;
    }

    void wait_for(short events, const std::string& late)
    {
        pollfd p{fd_.fd, events, 0};
        for (;;) {
            const int ms = deadline_ ? static_cast<int>(std::clamp<std::int64_t>(remaining().count(), 0, INT_MAX)) : -1;
            const int n = ::poll(&p, 1, ms);
            if (n > 0) return;   // ready, or an error or hang-up that the next call reports
            if (n < 0 && errno != EINTR) fail("cannot wait for " + path_, errno);
            if (n == 0) throw Failure(late + " within " + timeout_text());
        }
    }

    std::chrono::milliseconds remaining() const
    {
        // Rounded up, so that poll() does not wake a moment early and spin
        return std::chrono::ceil<std::chrono::milliseconds>(*deadline_ - Clock::now());
    }

    timeval remaining_timeval() const
    {
        const auto ms = std::max<std::int64_t>(1, remaining().count());
        return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
    }

    std::string timeout_text() const
    {
        return herdctl::human_duration(std::chrono::duration<double>(timeout_).count());
    }

    [[noreturn]] static void fail(const std::string& what, int error)
    {
        throw Failure(what + ": " + std::strerror(error));
    }

    std::string path_;
    herd::Duration timeout_;
    std::optional<Clock::time_point> deadline_;
    UniqueFd fd_;
};

int run(const herdctl::Request& request)
{
    Connection connection(request);
    connection.send(request.line);
    const herdctl::Outcome outcome = herdctl::interpret(request, connection.read_line());
    // The stop answer comes just before the manager exits: be done only once it has (stop POOL:
    // the manager runs on, the answer is the end)
    if (request.command == herdctl::Command::stop && request.pool.empty() && outcome.exit_code == herdctl::exit_ok)
        connection.wait_for_close();
    std::cout << outcome.out << std::flush;
    std::cerr << outcome.err;
    return outcome.exit_code;
}

}  // namespace

int main(int argc, char* argv[])
{
    try {
        const char* env_control = std::getenv("HERD_CONTROL");
        const std::vector<std::string> args(argv + std::min(argc, 1), argv + argc);
        const auto parsed = herdctl::parse_command_line(args, env_control ? env_control : "");
        if (const auto* info = std::get_if<herdctl::Info>(&parsed)) {
            std::cout << info->text;
            return herdctl::exit_ok;
        }
        return run(std::get<herdctl::Request>(parsed));
    } catch (const herd::UsageError& e) {
        std::cerr << herdctl::error_line(e.what());
        return herdctl::exit_usage;
    } catch (const std::exception& e) {
        std::cerr << herdctl::error_line(e.what());
        return herdctl::exit_failure;
    }
}
