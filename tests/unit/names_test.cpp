// What a pool's workers are called in titles and log lines.
#include <herd/core/names.hpp>

#include <doctest/doctest.h>

using namespace herd;

TEST_CASE("a worker of a named pool is POOL[slot] in log lines and NAME: POOL[slot] gen G in its title")
{
    CHECK(worker_role("web", 2) == "web[2]");
    CHECK(worker_title("shop", "web", 2, 3) == "shop: web[2] gen 3");
    CHECK(worker_title("shop", "jobs", 0, 1) == "shop: jobs[0] gen 1");
}

TEST_CASE("the pool main keeps the words of a server of one pool: worker[slot]")
{
    CHECK(worker_role(default_pool, 0) == "worker[0]");
    CHECK(worker_role("", 1) == "worker[1]");
    CHECK(worker_title("hello-http", "main", 3, 2) == "hello-http: worker[3] gen 2");
}

TEST_CASE("a worker whose slot is not known is POOL[?]")
{
    CHECK(worker_role("web", -1) == "web[?]");
    CHECK(worker_role("main", -1) == "worker[?]");
}
