"""The factor sets' sources in Chinese, for the Chinese pages. A published set never changes
(``factors``: its file is held to its hash), and its sources are cited as it gives them; these are
their Chinese renderings, keyed by the cited text. A test holds that every source of every set has
one, so a new set adds its own."""

ZH: dict[str, str] = {
    "MEE/NBS, 全国电力平均二氧化碳排放因子 2023, announcement 2025 No. 47": "生态环境部、国家统计局：2023年全国电力平均二氧化碳排放因子（2025年第47号公告）",
    "MEE/NBS provincial series, announcement 2025 No. 47 (2023 value unverified)": "生态环境部、国家统计局：省级电力排放因子（2025年第47号公告；2023年数值未经核实）",
    "GB/T 32150-2015 default for purchased heat": "GB/T 32150-2015 外购热力缺省值",
    "Chinese GHG accounting guideline defaults: 389.31 GJ/10⁴Nm³ × 0.01532 tC/GJ × 99 % × 44/12": "中国温室气体排放核算指南缺省值：389.31 GJ/10⁴Nm³ × 0.01532 tC/GJ × 99 % × 44/12",
    "UK DESNZ GHG conversion factors 2024 (petrol, average biofuel blend)": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子（汽油，平均生物燃料掺混）",
    "UK DESNZ GHG conversion factors 2024 (diesel, average biofuel blend)": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子（柴油，平均生物燃料掺混）",
    "UK DESNZ GHG conversion factors 2024, domestic flight, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：国内航班，含辐射强迫",
    "UK DESNZ GHG conversion factors 2024, short-haul economy, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：短途航班经济舱，含辐射强迫",
    "UK DESNZ GHG conversion factors 2024, long-haul economy, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：长途航班经济舱，含辐射强迫",
    "UK DESNZ GHG conversion factors 2024, domestic flight (flights within the UK, mostly under about 500 km), average passenger, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：国内航班（英国境内航班，多在约500公里以内），平均乘客，含辐射强迫",
    "UK DESNZ GHG conversion factors 2024, short-haul flight (under 3,700 km), economy, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：短途航班（3,700公里以内），经济舱，含辐射强迫",
    "UK DESNZ GHG conversion factors 2024, long-haul flight (over 3,700 km), economy, with radiative forcing": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：长途航班（3,700公里以上），经济舱，含辐射强迫",
    "China Environment News / Beijing Jiaotong University, China high-speed rail, full process, 2019 (rcees.cas.cn, 2024-03)": "中国环境报／北京交通大学：中国高速铁路全过程排放，2019年（rcees.cas.cn，2024年3月）",
    "UK DESNZ GHG conversion factors 2024, coach": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：长途客车",
    "UK DESNZ GHG conversion factors 2024, average car, per vehicle-km (divided by occupancy)": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：平均车型，每车公里（除以乘车人数）",
    "UK DESNZ GHG conversion factors 2024, hotel stay China (from the Cornell Hotel Sustainability Benchmarking)": "英国能源安全与净零排放部（DESNZ）2024年温室气体换算因子：中国酒店住宿（源自康奈尔酒店可持续发展基准）",
    "Scarborough et al. 2014, Climatic Change 125:179 (UK medium-meat diet, a day's diet ÷ 3)": "Scarborough 等，2014，Climatic Change 125:179（英国中等肉食膳食，一日膳食 ÷ 3）",
    "Scarborough et al. 2014, Climatic Change 125:179 (UK vegetarian diet, a day's diet ÷ 3)": "Scarborough 等，2014，Climatic Change 125:179（英国素食膳食，一日膳食 ÷ 3）",
}
