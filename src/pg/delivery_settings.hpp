// delivery_settings.hpp: the delivery engine's settings from the hyperline.*
// GUCs (defined in worker_common.cpp). The delivery worker and
// hyperline.test_delivery build their requests with them.
#pragma once

#include "core/delivery/types.hpp"

namespace hyperline::pg {

delivery::Settings DeliverySettings();

}  // namespace hyperline::pg
