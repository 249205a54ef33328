// herd::Worker, the public API (<herd/worker.hpp>); the runtime it forwards to is worker_runtime.cpp.
#include <herd/worker.hpp>

#include <herd/worker/worker_runtime.hpp>

#include <stdexcept>

namespace herd {

// herd::Worker: thin forwarding to the runtime of this process
void Worker::heartbeat()
{
    if (runtime_) runtime_->heartbeat();
}

bool Worker::stopping() const
{
    return runtime_ && runtime_->stopping();
}

void Worker::add_requests(std::uint64_t units) noexcept
{
    if (runtime_) runtime_->done(units);
}

std::uint64_t Worker::requests() const noexcept
{
    return runtime_ ? runtime_->requests() : 0;
}

const std::vector<Listener>& Worker::listeners() const
{
    static const std::vector<Listener> none;
    return runtime_ ? runtime_->setup().listeners : none;
}

int Worker::slot() const
{
    return runtime_ ? runtime_->setup().slot : -1;
}

unsigned Worker::generation() const
{
    return runtime_ ? runtime_->setup().generation : 0;
}

const Options& Worker::options() const
{
    if (!runtime_) throw std::logic_error("herd::Worker::options() outside a worker process");
    return *runtime_->setup().options;
}

const boost::program_options::variables_map& Worker::args() const
{
    if (!runtime_ || !runtime_->setup().args) throw std::logic_error("herd::Worker::args() outside a worker process");
    return *runtime_->setup().args;
}

int Worker::accept()
{
    if (!runtime_) throw std::logic_error("herd::Worker::accept() outside a worker process");
    return runtime_->accept();
}

Wake Worker::wait_readable(int fd, std::chrono::milliseconds timeout)
{
    if (!runtime_) throw std::logic_error("herd::Worker::wait_readable() outside a worker process");
    return runtime_->wait_readable(fd, timeout);
}

int Worker::stop_fd() const
{
    return runtime_ ? runtime_->stop_fd() : -1;
}

void Worker::attach(boost::asio::io_context& io)
{
    if (runtime_) runtime_->attach(io);
}

}  // namespace herd
