#include <gtest/gtest.h>

TEST(Compiler, Placeholder) { SUCCEED(); }
