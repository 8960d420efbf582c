#include <gtest/gtest.h>

#include "func/mxm.h"
