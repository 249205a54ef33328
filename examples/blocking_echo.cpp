// blocking-echo: a worker written as a plain blocking loop, the way unicorn's and Mojolicious'
// workers are: accept a client, serve it to the end, close it, accept the next one.
//
//   blocking-echo -l 127.0.0.1:7000 -w 4
//   printf 'hello\n' | nc -q1 127.0.0.1 7000        # prints hello
//
// A worker sends back every byte a client sends, until the client closes its side. It serves one
// client at a time: N workers serve N clients at once, the next ones wait in the listen backlog.
//
// What such a loop needs from herd, and gets:
//   accept()     blocks until a client comes, heartbeating meanwhile, so an idle worker is not
//                taken for a hung one; once QUIT came it hands out the clients that were already
//                queued, closes the listeners and returns -1: the loop ends, run() returns.
//   read/write   in the middle of a client go on through QUIT (the handlers use SA_RESTART): the
//                client is served to the end, then the worker exits.
//   add_requests() one unit of work per client: feeds --max-requests and status.
// A client that stalls holds its worker, and no heartbeat is sent meanwhile: past
// --heartbeat-timeout the manager retires the worker as hung (unicorn's timeout, the same way).
// Serve slow clients from behind a buffering proxy, or keep --heartbeat-timeout above the
// longest request.
#include <herd/herd.hpp>

#include <cerrno>
#include <cstddef>

#include <unistd.h>

namespace {

// Write all of it; false once the client is gone (EPIPE: herd workers ignore SIGPIPE).
bool write_all(int fd, const char* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= std::size_t(n);
    }
    return true;
}

}  // namespace

class BlockingEcho : public herd::Worker {
public:
    int run() override
    {
        // One client at a time, until QUIT
        for (int client; (client = accept()) >= 0;) {
            serve(client);
            ::close(client);
            add_requests();
        }
        return 0;
    }

private:
    // Echo what the client sends until it closes its side; plain blocking I/O
    static void serve(int client)
    {
        char buffer[4096];
        for (;;) {
            const ssize_t n = ::read(client, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;   // closed (or reset) by the client
            if (!write_all(client, buffer, std::size_t(n))) return;
        }
    }
};

int main(int argc, char** argv)
{
    return herd::main<BlockingEcho>(argc, argv);
}
