// A minimal herd server: each worker answers every connection with one line, in a plain blocking
// accept loop. `hello --listen 127.0.0.1:8080 --workers 4`, then `nc 127.0.0.1 8080`.
#include <herd/herd.hpp>

#include <unistd.h>

#include <string_view>

class Hello : public herd::Worker {
public:
    int run() override
    {
        for (int client; (client = accept()) >= 0;) {   // -1 once QUIT came
            constexpr std::string_view reply = "hello from herd\n";
            if (::write(client, reply.data(), reply.size()) < 0) {
                // the client left first: nothing to do but close
            }
            ::close(client);
            add_requests();
        }
        return 0;
    }
};

int main(int argc, char** argv)
{
    herd::App app;
    app.version = "1.0.0";
    return herd::main<Hello>(argc, argv, std::move(app));
}
