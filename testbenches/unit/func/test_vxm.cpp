#include <gtest/gtest.h>

#include "func/vxm.h"
