// test-worker: a herd server whose worker misbehaves on request, for integration tests and the
// benchmark. `--mode` picks the behaviour (N is in milliseconds unless said otherwise):
//
//   ok             heartbeat every 10 ms until stopping(), then return 0
//   hang-after=N   ok for N ms after start, then no heartbeat ever again and QUIT ignored
//   crash-at-boot  abort() in on_start
//   exit-at-boot=N _exit(N) in on_start (N is an exit code)
//   never-ready    on_start blocks forever (no first heartbeat)
//   ignore-quit    keeps running and heartbeating after QUIT
//   slow-drain=N   on QUIT keeps working N ms, then returns 0
//   crash-after=N  abort() N ms after start (returns 0 if QUIT comes first)
//   orphans=N      at start, leave N grandchildren that outlive their parent by 50 ms (as PID 1
//                  the manager must reap them), then work as ok
//   flood-records  the worker in slot 0 writes valid heartbeat records to its heartbeat pipe as
//                  fast as the pipe takes them (many per write) until QUIT; the others work as ok
//   flood-garbage  the same with malformed records holding NUL, ESC and CR
//   idle-wait      waits in wait_readable() on no descriptor until QUIT: every heartbeat comes
//                  from inside that wait
//   poll-stop-fd   a poll() loop of its own on stop_fd(), heartbeat() once per wake-up
//   grow=MB        the worker in slot 0 writes MB MiB of private memory after start and keeps
//                  working as ok (feeds --max-worker-memory); the others work as ok
//   environment    logs "test worker PID sees NOTIFY_SOCKET=V WATCHDOG_USEC=V WATCHDOG_PID=V" (V:
//                  the value or "unset") at start, then works as ok
//   poke-pages     the worker in slot 0 looks for its siblings' heartbeat pages among its
//                  manager's descriptors and mappings (/proc/PPID/fd, /proc/PPID/map_files) and
//                  tries to write each (write(), a writable mapping); logs "test worker PID found N
//                  heartbeat pages, wrote W, holds H" (H: pages among its own descriptors), then
//                  works as ok; the others work as ok
//   print          writes to stdout and stderr the way a library might, past herd's log: at start
//                  "printf from worker PID in slot S" (printf), "cout from worker PID" (std::cout),
//                  "stderr from worker PID" (fprintf to stderr), an ESC sequence, and one line of
//                  its own through spdlog ("test worker PID logs through spdlog"); then works as
//                  ok; after QUIT writes "stderr after QUIT from worker PID" to stderr and "last
//                  words of PID" with no newline to stdout, and returns 0
//
//   read-preload   reads every byte of the --preload buffer and logs "test worker PID read N MiB
//                  preloaded by PID, checksum C, private memory P kB" (P: Private_Clean +
//                  Private_Dirty of /proc/self/smaps_rollup after the read), then works as ok
//
// `--preload MB` builds MB MiB of patterned bytes in the manager before the first fork
// (herd::Worker's static preload()), logs "test-worker preloaded N MiB in manager PID" and appends
// "built by PID" to the file `--preload-log PATH` names (if any).
//
// `--no-pdeathsig` clears PR_SET_PDEATHSIG in on_start (and says so in the log): only the
// heartbeat channel can then tell the worker that its manager died.
//
// `--units N` reports N units of work per 10 ms tick (feeds --max-requests).
//
// Built twice more for the upgrade tests, as a new binary that passes `--check` (the manager is
// sound) but whose workers never come up, whatever --mode says:
//   test-worker-broken       (-DTEST_WORKER_BROKEN=1)       every worker aborts in on_start
//   test-worker-never-ready  (-DTEST_WORKER_NEVER_READY=1)  every worker blocks in on_start
// Both accept every option of the standard command line and hello-http's --test-endpoints, so
// they can replace hello-http too.
#include <herd/herd.hpp>

#include <boost/program_options.hpp>
#include <spdlog/spdlog.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto tick = 10ms;

enum class Mode { ok, hang_after, crash_at_boot, exit_at_boot, never_ready, ignore_quit, slow_drain, crash_after, orphans,
                  flood_records, flood_garbage, idle_wait, poll_stop_fd, grow, print, environment, poke_pages, read_preload };

struct ParsedMode {
    Mode mode = Mode::ok;
    long value = 0;
};

// "name" or "name=N"; nothing if the text is not a mode.
bool parse_mode(const std::string& text, ParsedMode& out)
{
    const auto eq = text.find('=');
    const std::string name = text.substr(0, eq);
    const bool has_value = eq != std::string::npos;
    long value = 0;
    if (has_value) {
        const std::string digits = text.substr(eq + 1);
        char* end = nullptr;
        value = std::strtol(digits.c_str(), &end, 10);
        if (digits.empty() || *end != '\0' || value < 0) return false;
    }
    struct Entry {
        const char* name;
        Mode mode;
        bool needs_value;
    };
    static constexpr Entry table[] = {
        {"ok", Mode::ok, false},
        {"hang-after", Mode::hang_after, true},
        {"crash-at-boot", Mode::crash_at_boot, false},
        {"exit-at-boot", Mode::exit_at_boot, true},
        {"never-ready", Mode::never_ready, false},
        {"ignore-quit", Mode::ignore_quit, false},
        {"slow-drain", Mode::slow_drain, true},
        {"crash-after", Mode::crash_after, true},
        {"orphans", Mode::orphans, true},
        {"flood-records", Mode::flood_records, false},
        {"flood-garbage", Mode::flood_garbage, false},
        {"idle-wait", Mode::idle_wait, false},
        {"poll-stop-fd", Mode::poll_stop_fd, false},
        {"grow", Mode::grow, true},
        {"print", Mode::print, false},
        {"environment", Mode::environment, false},
        {"poke-pages", Mode::poke_pages, false},
        {"read-preload", Mode::read_preload, false},
    };
    for (const auto& e : table) {
        if (name == e.name && has_value == e.needs_value) {
            out = {e.mode, value};
            return true;
        }
    }
    return false;
}

// The heartbeat pages (memfds named herd-beat) in a /proc directory of links: how many, and how
// many of them could be written through a descriptor opened on the link.
std::pair<int, int> poke_pages(const std::string& dir)
{
    int found = 0, wrote = 0;
    DIR* d = ::opendir(dir.c_str());
    if (!d) return {0, 0};
    while (const dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const std::string link = dir + "/" + e->d_name;
        char target[256] = {};
        if (::readlink(link.c_str(), target, sizeof target - 1) <= 0 || !std::strstr(target, "herd-beat")) continue;
        ++found;
        const int fd = ::open(link.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;
        const std::uint64_t forged = ~std::uint64_t(0);
        bool written = ::pwrite(fd, &forged, sizeof forged, 8) == ssize_t(sizeof forged);
        void* at = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (at != MAP_FAILED) {
            written = true;
            ::munmap(at, 4096);
        }
        wrote += written;
        ::close(fd);
    }
    ::closedir(d);
    return {found, wrote};
}

// Sleep without ever returning: for modes that must look hung.
[[noreturn]] void block_forever()
{
    for (;;) std::this_thread::sleep_for(1h);
}

// A child that forks a grandchild and exits at once: the grandchild is adopted by PID 1 (or the
// nearest subreaper) and exits 50 ms later.
void leave_orphans(int n)
{
    for (int i = 0; i < n; ++i) {
        const pid_t child = ::fork();
        if (child == 0) {
            if (::fork() == 0) {
                ::usleep(50'000);
                ::_exit(0);
            }
            ::_exit(0);
        }
        if (child > 0) ::waitpid(child, nullptr, 0);
    }
}

// Flood modes. herd::Worker does not expose its heartbeat descriptor: it is our write-only pipe
// whose read end the manager (our parent) holds.
std::map<std::string, int> pipes_of(const std::string& pid, int access)   // "pipe:[inode]" -> fd
{
    std::map<std::string, int> found;
    const std::string dir_path = "/proc/" + pid + "/fd";
    DIR* dir = ::opendir(dir_path.c_str());
    if (!dir) return found;
    while (const dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        char target[64] = {};
        if (::readlink((dir_path + "/" + e->d_name).c_str(), target, sizeof target - 1) <= 0) continue;
        if (std::string(target).rfind("pipe:", 0) != 0) continue;
        unsigned flags = 0;
        if (std::FILE* info = std::fopen(("/proc/" + pid + "/fdinfo/" + e->d_name).c_str(), "r")) {
            char line[128];
            while (std::fgets(line, sizeof line, info))
                if (std::sscanf(line, "flags: %o", &flags) == 1) break;
            std::fclose(info);
        }
        if (int(flags & O_ACCMODE) == access) found[target] = std::atoi(e->d_name);
    }
    ::closedir(dir);
    return found;
}

int find_heartbeat_fd()
{
    const auto theirs = pipes_of(std::to_string(::getppid()), O_RDONLY);
    for (const auto& [name, fd] : pipes_of("self", O_WRONLY))
        if (fd > 2 && theirs.count(name)) return fd;
    return -1;
}

// Write `chunk` to fd again and again, as fast as the reader takes it, until `stop` says so.
template <class Stop>
void flood(int fd, const std::string& chunk, Stop&& stop)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);   // so that QUIT is seen while the pipe is full
    while (!stop()) {
        if (::write(fd, chunk.data(), chunk.size()) >= 0 || errno == EINTR) continue;
        if (errno != EAGAIN) {   // EPIPE: the manager is gone
            spdlog::info("test worker {} stops flooding: {}", ::getpid(), std::strerror(errno));
            return;
        }
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 10);
    }
}

// 4 KiB of records: valid ones with a growing count, or malformed ones holding control bytes.
std::string flood_chunk(bool garbage)
{
    std::string chunk;
    static constexpr char bad[] = "\x1b[31mred\0nul\rcr \x01\x7f junk\n";
    for (std::uint64_t n = 1; chunk.size() < 4000; ++n) {
        if (garbage) chunk.append(bad, sizeof bad - 1);
        else chunk += "requests=" + std::to_string(n) + "\n";
    }
    return chunk;
}

// --preload: built once in the manager, read by every worker (copy-on-write)
struct Preloaded {
    const unsigned char* bytes = nullptr;
    std::size_t size = 0;
    pid_t built_by = 0;
};
Preloaded preloaded;

// kB of this process's own memory: Private_Clean + Private_Dirty of /proc/self/smaps_rollup.
long private_kb()
{
    long total = 0;
    if (std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r")) {
        char line[256];
        long kb = 0;
        while (std::fgets(line, sizeof line, f))
            if (std::sscanf(line, "Private_Clean: %ld kB", &kb) == 1 || std::sscanf(line, "Private_Dirty: %ld kB", &kb) == 1)
                total += kb;
        std::fclose(f);
    }
    return total;
}

class TestWorker : public herd::Worker {
public:
    static void preload(const herd::Options&, const po::variables_map& args)
    {
        const unsigned mib = args["preload"].as<unsigned>();
        if (mib == 0) return;
        const std::size_t size = std::size_t(mib) << 20;
        void* at = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (at == MAP_FAILED) throw std::runtime_error("cannot map " + std::to_string(mib) + " MiB for --preload");
        auto* bytes = static_cast<unsigned char*>(at);
        for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(i % 251 + 1);
        preloaded = {bytes, size, ::getpid()};
        spdlog::info("test-worker preloaded {} MiB in manager {}", mib, ::getpid());
        if (const auto& log = args["preload-log"].as<std::string>(); !log.empty()) {
            const std::string line = "built by " + std::to_string(::getpid()) + "\n";
            const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd < 0 || ::write(fd, line.data(), line.size()) != ssize_t(line.size()))
                throw std::runtime_error("cannot append to --preload-log " + log);
            ::close(fd);
        }
    }

    static void add_options(po::options_description& d)
    {
        d.add_options()
            ("mode", po::value<std::string>()->default_value("ok"),
             "ok | hang-after=MS | crash-at-boot | exit-at-boot=CODE | never-ready | ignore-quit"
             " | slow-drain=MS | crash-after=MS | orphans=N | flood-records | flood-garbage | idle-wait | poll-stop-fd | grow=MB"
             " | print | environment | read-preload")
            ("units", po::value<std::uint64_t>()->default_value(0), "units of work reported per 10 ms tick")
            ("preload", herd::count_option(0, "MB"), "MiB of patterned bytes built in the manager before the first fork")
            ("preload-log", herd::text_option("", "PATH"), "append 'built by PID' here at each preload")
            ("no-pdeathsig", po::bool_switch(), "clear PR_SET_PDEATHSIG at start: only the heartbeat channel tells of a dead manager");
#if defined(TEST_WORKER_BROKEN) || defined(TEST_WORKER_NEVER_READY)
        // hello-http's own switch, so that a broken build replaces a hello-http that has it on
        // (herd-soak): a rollback execs the previous binary with the command line it was given
        d.add_options()("test-endpoints", po::bool_switch(), "accepted and ignored (hello-http's)");
#endif
    }

    void on_start() override
    {
        // Variants built for the upgrade tests: the mode is fixed at build time
#if defined(TEST_WORKER_BROKEN)
        std::abort();
#elif defined(TEST_WORKER_NEVER_READY)
        block_forever();
#endif
        started_ = Clock::now();
        const std::string text = args()["mode"].as<std::string>();
        if (!parse_mode(text, mode_)) {
            // A typo in a test must not look like a crash of the manager's making.
            spdlog::error("test-worker: unknown --mode '{}'", text);
            ::_exit(2);
        }
        units_ = args()["units"].as<std::uint64_t>();
        if (args()["no-pdeathsig"].as<bool>()) {
            ::prctl(PR_SET_PDEATHSIG, 0);
            int left = -1;
            ::prctl(PR_GET_PDEATHSIG, &left);
            spdlog::info("test worker {} runs without PR_SET_PDEATHSIG (signal {})", ::getpid(), left);
        }
        spdlog::debug("test worker {} in slot {} runs mode {}", ::getpid(), slot(), text);

        // Boot-time modes
        switch (mode_.mode) {
        case Mode::crash_at_boot: std::abort();
        case Mode::exit_at_boot: ::_exit(static_cast<int>(mode_.value));
        case Mode::never_ready: block_forever();
        case Mode::orphans: leave_orphans(int(mode_.value)); break;
        case Mode::print: print(); break;
        case Mode::read_preload: read_preload(); break;
        case Mode::environment:
            spdlog::info("test worker {} sees{}", ::getpid(), [] {
                std::string seen;
                for (const char* name : {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
                    seen += std::string(" ") + name + "=" + (std::getenv(name) ? std::getenv(name) : "unset");
                return seen;
            }());
            break;
        default: break;
        }
    }

    int run() override
    {
        const auto limit = std::chrono::milliseconds(mode_.value);

        // Flooding the heartbeat channel
        if ((mode_.mode == Mode::flood_records || mode_.mode == Mode::flood_garbage) && slot() == 0) {
            const int fd = find_heartbeat_fd();
            if (fd < 0) {
                spdlog::error("test-worker: no heartbeat pipe found");
                return 2;
            }
            spdlog::info("test worker {} floods its heartbeat channel (fd {}, {})", ::getpid(), fd,
                         mode_.mode == Mode::flood_garbage ? "garbage" : "records");
            flood(fd, flood_chunk(mode_.mode == Mode::flood_garbage), [this] { return stopping(); });
            return 0;
        }
        if (mode_.mode == Mode::poke_pages && slot() == 0) {
            const std::string manager = "/proc/" + std::to_string(::getppid());
            const auto [fds, fds_wrote] = poke_pages(manager + "/fd");
            const auto [maps, maps_wrote] = poke_pages(manager + "/map_files");
            spdlog::info("test worker {} found {} heartbeat pages, wrote {}, holds {}", ::getpid(), fds + maps,
                         fds_wrote + maps_wrote, poke_pages("/proc/self/fd").first);
        }
        // Idle in herd's own wait until QUIT
        if (mode_.mode == Mode::idle_wait) {
            while (wait_readable(-1) != herd::Wake::stopping) {
            }
            return 0;
        }
        if (mode_.mode == Mode::poll_stop_fd) {
            pollfd stop{stop_fd(), POLLIN, 0};
            const auto every = std::chrono::duration_cast<std::chrono::milliseconds>(options().heartbeat_interval);
            while (!stopping()) {
                heartbeat();
                ::poll(&stop, 1, int(every.count()));
            }
            return 0;
        }

        // Private memory of its own, written so that every page is really there
        if (mode_.mode == Mode::grow && slot() == 0) {
            // A MiB at a time, heartbeating in between: writing 100 MiB on a busy machine can take
            // longer than a short --heartbeat-timeout
            ballast_.reserve(std::size_t(mode_.value) << 20);
            for (std::int64_t mib = 0; mib < mode_.value; ++mib) {
                ballast_.append(std::size_t(1) << 20, 'x');
                beat();
            }
            spdlog::info("test worker {} grew by {} MiB (grow={})", ::getpid(), mode_.value, mode_.value);
        }

        // Work until QUIT, or until the mode says otherwise
        while (!stopping() || mode_.mode == Mode::ignore_quit) {
            beat();
            // Checked right after a heartbeat: with --heartbeat-interval at or below the tick,
            // the "stops heartbeating" line marks the last heartbeat to within microseconds.
            if (mode_.mode == Mode::hang_after && Clock::now() - started_ >= limit) {
                spdlog::info("test worker {} stops heartbeating (hang-after={})", ::getpid(), mode_.value);
                block_forever();
            }
            if (mode_.mode == Mode::crash_after && Clock::now() - started_ >= limit) std::abort();
            std::this_thread::sleep_for(tick);
        }

        if (mode_.mode == Mode::print) {
            std::fprintf(stderr, "stderr after QUIT from worker %d\n", int(::getpid()));
            std::printf("last words of %d", int(::getpid()));   // no newline
        }

        // Slow drain after QUIT
        if (mode_.mode == Mode::slow_drain) {
            const auto until = Clock::now() + limit;
            while (Clock::now() < until) {
                beat();
                std::this_thread::sleep_for(tick);
            }
        }
        return 0;
    }

private:
    // Every byte of the preloaded buffer, read and summed: shared pages stay shared
    void read_preload()
    {
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < preloaded.size; ++i) sum += preloaded.bytes[i];
        spdlog::info("test worker {} read {} MiB preloaded by {}, checksum {}, private memory {} kB", ::getpid(),
                     preloaded.size >> 20, preloaded.built_by, sum, private_kb());
    }

    // Output that is not herd's: what a library's stray printf would write.
    void print()
    {
        const int pid = int(::getpid());
        std::printf("printf from worker %d in slot %d\n", pid, slot());
        std::cout << "cout from worker " << pid << std::endl;
        std::fprintf(stderr, "stderr from worker %d\n", pid);
        std::printf("\x1b[31mred from worker %d\x1b[0m\n", pid);
        spdlog::info("test worker {} logs through spdlog", pid);
    }

    void beat()
    {
        heartbeat();
        if (units_ > 0) add_requests(units_);
    }

    ParsedMode mode_;
    std::uint64_t units_ = 0;
    Clock::time_point started_;
    std::string ballast_;   // grow=MB
};

}  // namespace

int main(int argc, char** argv)
{
    // abort() is a test scenario here, not a bug: no core files.
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    return herd::main<TestWorker>(argc, argv);
}
