#include <gtest/gtest.h>

#include "func/sxm.h"
