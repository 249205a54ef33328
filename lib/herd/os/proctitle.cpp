// Process titles: the classic argv-clobbering technique (nginx, PostgreSQL), described in proctitle.hpp.
#include <herd/os/proctitle.hpp>

#include <algorithm>
#include <cerrno>   // program_invocation_name
#include <cstdlib>
#include <cstring>
#include <string>

#include <sys/prctl.h>
#include <unistd.h>

extern char** environ;

namespace herd::proctitle {

namespace {

char* area_begin = nullptr;
std::size_t area_size = 0;
bool initialized = false;
// The environment's array and strings, moved by init(); volatile, so that the stores that keep
// them named are not optimized away (nothing here reads them).
char** volatile moved_environ = nullptr;
char* volatile moved_strings = nullptr;

char* copy_string(const char* s)
{
    char* copy = ::strdup(s);
    // Out of memory at start-up: nothing sensible is possible, and leaving a pointer into the
    // area we are about to overwrite would corrupt the environment silently.
    if (copy == nullptr) std::abort();
    return copy;
}

}  // namespace

void init(int argc, char** argv)
{
    if (initialized || argc <= 0 || argv == nullptr || argv[0] == nullptr) return;
    initialized = true;

    // Find the contiguous area: argv strings, then environment strings, each right after the last
    char* end = argv[0] + std::strlen(argv[0]) + 1;
    for (int i = 1; i < argc && argv[i] == end; ++i) end += std::strlen(argv[i]) + 1;
    std::size_t env_count = 0;
    while (environ != nullptr && environ[env_count] != nullptr) ++env_count;
    for (std::size_t i = 0; i < env_count && environ[i] == end; ++i) end += std::strlen(environ[i]) + 1;

    // Move the environment to the heap: a new array, as glibc's setenv expects of a replaced
    // environ (it copies the array on the next change instead of reallocating ours), and the
    // strings in one block. Both stay named here for the life of the process: unsetenv drops
    // a string from the array, and glibc's clearenv at exit (__libc_freeres, which valgrind runs)
    // forgets the array, but neither is memory to give back.
    std::size_t strings_size = 0;
    for (std::size_t i = 0; i < env_count; ++i) strings_size += std::strlen(environ[i]) + 1;
    char** env = static_cast<char**>(std::calloc(env_count + 1, sizeof(char*)));
    char* strings = static_cast<char*>(std::malloc(strings_size + 1));
    if (env == nullptr || strings == nullptr) std::abort();
    for (std::size_t i = 0, at = 0; i < env_count; ++i) {
        const std::size_t n = std::strlen(environ[i]) + 1;
        env[i] = static_cast<char*>(std::memcpy(strings + at, environ[i], n));
        at += n;
    }
    moved_environ = env;
    moved_strings = strings;
    environ = env;

    // Move argv to the heap too, and glibc's pointers to the program name (error(3), err(3))
    char* const begin = argv[0];
    program_invocation_name = copy_string(program_invocation_name);
    program_invocation_short_name = copy_string(program_invocation_short_name);
    for (int i = 0; i < argc; ++i) argv[i] = copy_string(argv[i]);

    area_begin = begin;
    area_size = static_cast<std::size_t>(end - begin);
}

void set(std::string_view title)
{
    // The kernel keeps at most 15 characters of a thread name (TASK_COMM_LEN - 1).
    char name[16] = {};
    title.copy(name, std::min(title.size(), sizeof name - 1));
    ::prctl(PR_SET_NAME, name, 0, 0, 0);

    if (area_begin == nullptr || area_size == 0) return;
    // Title, then NULs up to the end, so no old argument or variable shows behind it; the last
    // byte stays NUL so readers of /proc/PID/cmdline find the end.
    const std::size_t n = std::min(title.size(), area_size - 1);
    std::memcpy(area_begin, title.data(), n);
    std::memset(area_begin + n, '\0', area_size - n);
}

}  // namespace herd::proctitle
