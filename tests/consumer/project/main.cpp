// The smallest herd server: a worker that only keeps its heartbeat until asked to stop.
#include <herd/herd.hpp>

#include <chrono>
#include <thread>

class Idle : public herd::Worker {
public:
    int run() override
    {
        while (!stopping()) {
            heartbeat();
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return 0;
    }
};

int main(int argc, char** argv)
{
    herd::App app;
    app.version = "1.2.3";
    return herd::main<Idle>(argc, argv, std::move(app));
}
