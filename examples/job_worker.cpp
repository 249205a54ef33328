// job-worker: herd without sockets (job_worker.hpp has the worker).
//
//   job-worker -w 2 --job-interval 500ms --job-size 8
#include "job_worker.hpp"

int main(int argc, char** argv)
{
    return herd::main<JobWorker>(argc, argv);
}
