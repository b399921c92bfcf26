// i18n.js holds every string the wall screen shows, in Vietnamese (the
// default) and English, and the helpers that pick and apply them.

import { AQI_BANDS } from './aqi_bands.js';

const STORAGE_KEY = 'iochub.lang';

export const LANGS = ['vi', 'en'];

export const strings = {
  vi: {
    title: 'iochub — Trung tâm giám sát, điều hành thông minh',
    brand: 'Trung tâm giám sát, điều hành thông minh',
    province: 'Tỉnh/thành phố {code}',
    switchTo: 'EN',
    switchTitle: 'Switch to English',
    logout: 'Đăng xuất',
    'login.title': 'Đăng nhập màn hình giám sát',
    'login.label': 'Khóa truy cập (do quản trị viên cấp)',
    'login.submit': 'Đăng nhập',
    'login.refused': 'Khóa không hợp lệ hoặc đã bị thu hồi',
    'login.codeUsed': 'Mã đăng nhập đã được dùng hoặc đã hết hạn; hãy nhập khóa truy cập',
    'login.again': 'Phiên đăng nhập đã hết hiệu lực; hãy đăng nhập lại',
    'conn.connecting': 'Đang kết nối',
    'conn.online': 'Trực tuyến',
    'conn.offline': 'Mất kết nối…',
    'conn.retry': 'Mất kết nối… thử lại sau {s} giây',
    'count.stations': 'Trạm quan trắc',
    'count.segments': 'Đoạn đường',
    'count.alerts': 'Cảnh báo',
    'count.wards': 'Phường/xã',
    lastUpdate: 'Cập nhật',
    never: '—',
    'legend.title': 'Chú giải',
    'legend.pm25': 'PM2.5 (µg/m³)',
    'legend.pm25Note': 'Màu theo VN_AQI giờ của trạm (QĐ 1459/QĐ-TCMT); theo PM2.5 khi chưa tính được',
    'legend.water': 'Trạm thủy văn (theo thứ tự màu): bình thường, báo động I, II, III',
    'legend.weather': 'Trạm khí tượng',
    'water.alarm0': 'Dưới báo động I',
    'water.alarm1': 'Báo động I',
    'water.alarm2': 'Báo động II',
    'water.alarm3': 'Báo động III',
    'aqi.none': 'chưa tính được',
    'aqi.daily': 'ngày hôm trước',
    'aqi.dominant': 'chất chính',
    'popup.water': 'Trạm thủy văn',
    'popup.weather': 'Trạm khí tượng',
    'value.precipitation': 'Lượng mưa',
    'value.atmosphericPressure': 'Áp suất khí quyển',
    'value.waterLevel': 'Mực nước',
    'value.alarmLevel1': 'Mức báo động I',
    'value.alarmLevel2': 'Mức báo động II',
    'value.alarmLevel3': 'Mức báo động III',
    'value.flow': 'Lưu lượng dòng chảy',
    'value.pH': 'pH',
    'value.conductivity': 'Độ dẫn điện',
    'value.turbidity': 'Độ đục',
    'value.O2': 'Oxy hòa tan',
    'legend.noValue': 'Không có số liệu',
    'legend.speed': 'Tốc độ trung bình (km/h)',
    'legend.speedSlow': '< 15 — ùn tắc',
    'legend.speedMid': '15–30 — chậm',
    'legend.speedFast': '≥ 30 — thông thoáng',
    'legend.alert': 'Vùng cảnh báo',
    'legend.ward': 'Ranh giới phường/xã',
    'alerts.title': 'Cảnh báo đang hiệu lực',
    'alerts.none': 'Không có cảnh báo',
    'alerts.more': '+{n} cảnh báo khác',
    'alerts.units': 'Đơn vị',
    'alerts.sent': 'Phát lúc',
    'alerts.expires': 'Hết hạn',
    'severity.Extreme': 'Cực kỳ nghiêm trọng',
    'severity.Severe': 'Nghiêm trọng',
    'severity.Moderate': 'Trung bình',
    'severity.Minor': 'Nhẹ',
    'severity.Unknown': 'Không rõ',
    'popup.station': 'Trạm quan trắc không khí',
    'popup.segment': 'Đoạn đường',
    'popup.alert': 'Cảnh báo',
    'popup.ward': 'Phường/xã',
    'popup.time': 'Thời điểm đo',
    'popup.unit': 'Đơn vị hành chính',
    'popup.code': 'Mã',
    'value.pm25': 'PM2.5',
    'value.pm10': 'PM10',
    'value.pm1': 'PM1',
    'value.no2': 'NO₂',
    'value.o3': 'O₃',
    'value.co': 'CO',
    'value.so2': 'SO₂',
    'value.nh3': 'NH₃',
    'value.no': 'NO',
    'value.nox': 'NOx',
    'value.temperature': 'Nhiệt độ',
    'value.relativeHumidity': 'Độ ẩm tương đối',
    'value.windSpeed': 'Tốc độ gió',
    'value.windDirection': 'Hướng gió',
    'value.intensity': 'Lưu lượng',
    'value.occupancy': 'Độ chiếm dụng',
    'value.averageVehicleSpeed': 'Tốc độ trung bình',
    'value.averageVehicleLength': 'Chiều dài xe trung bình',
    'value.averageHeadwayTime': 'Giãn cách trung bình',
    'value.congested': 'Ùn tắc',
    'value.laneId': 'Làn',
    'value.laneDirection': 'Hướng làn',
    'unit.intensity': 'xe/giờ',
    'lane.forward': 'xuôi chiều',
    'lane.backward': 'ngược chiều',
    yes: 'Có',
    no: 'Không',
    'fatal.noMap': 'Không tải được thư viện bản đồ (vendor/maplibre-gl.js). Hãy chạy web/scripts/vendor.sh rồi build lại iochub. Các con số và danh sách cảnh báo vẫn được cập nhật trực tuyến.',
    'fatal.noWebGL': 'Trình duyệt không hiển thị được bản đồ (thiếu WebGL): {err}. Số liệu trực tuyến vẫn được cập nhật.',
    'fatal.units': 'Không tải được ranh giới hành chính: {err}. Đang thử lại…',
  },
  en: {
    title: 'iochub — Intelligent Operations Center',
    brand: 'Intelligent Operations Center',
    province: 'Province {code}',
    switchTo: 'VI',
    switchTitle: 'Chuyển sang tiếng Việt',
    logout: 'Sign out',
    'login.title': 'Sign in to the wall screen',
    'login.label': 'Access key (from your administrator)',
    'login.submit': 'Sign in',
    'login.refused': 'The key is not valid or was revoked',
    'login.codeUsed': 'The sign-in code was used or has expired; enter an access key',
    'login.again': 'The session has ended; sign in again',
    'conn.connecting': 'Connecting',
    'conn.online': 'Online',
    'conn.offline': 'Disconnected…',
    'conn.retry': 'Disconnected… retrying in {s} s',
    'count.stations': 'Stations',
    'count.segments': 'Segments',
    'count.alerts': 'Alerts',
    'count.wards': 'Wards',
    lastUpdate: 'Updated',
    never: '—',
    'legend.title': 'Legend',
    'legend.pm25': 'PM2.5 (µg/m³)',
    'legend.pm25Note': 'Colour of the station\'s hourly VN_AQI (Decision 1459/QĐ-TCMT); by PM2.5 when there is none',
    'legend.water': 'Hydrological station (by colour): normal, alarm I, II, III',
    'legend.weather': 'Weather station',
    'water.alarm0': 'Below alarm level I',
    'water.alarm1': 'Alarm level I',
    'water.alarm2': 'Alarm level II',
    'water.alarm3': 'Alarm level III',
    'aqi.none': 'not computed',
    'aqi.daily': 'previous day',
    'aqi.dominant': 'dominant',
    'popup.water': 'Hydrological station',
    'popup.weather': 'Weather station',
    'value.precipitation': 'Precipitation',
    'value.atmosphericPressure': 'Atmospheric pressure',
    'value.waterLevel': 'Water level',
    'value.alarmLevel1': 'Alarm level I',
    'value.alarmLevel2': 'Alarm level II',
    'value.alarmLevel3': 'Alarm level III',
    'value.flow': 'Flow',
    'value.pH': 'pH',
    'value.conductivity': 'Conductivity',
    'value.turbidity': 'Turbidity',
    'value.O2': 'Dissolved oxygen',
    'legend.noValue': 'No data',
    'legend.speed': 'Average speed (km/h)',
    'legend.speedSlow': '< 15 — congested',
    'legend.speedMid': '15–30 — slow',
    'legend.speedFast': '≥ 30 — free flow',
    'legend.alert': 'Alert area',
    'legend.ward': 'Ward boundary',
    'alerts.title': 'Active alerts',
    'alerts.none': 'No active alerts',
    'alerts.more': '+{n} more alerts',
    'alerts.units': 'Units',
    'alerts.sent': 'Sent',
    'alerts.expires': 'Expires',
    'severity.Extreme': 'Extreme',
    'severity.Severe': 'Severe',
    'severity.Moderate': 'Moderate',
    'severity.Minor': 'Minor',
    'severity.Unknown': 'Unknown',
    'popup.station': 'Air quality station',
    'popup.segment': 'Road segment',
    'popup.alert': 'Alert',
    'popup.ward': 'Ward',
    'popup.time': 'Observed at',
    'popup.unit': 'Administrative unit',
    'popup.code': 'Code',
    'value.pm25': 'PM2.5',
    'value.pm10': 'PM10',
    'value.pm1': 'PM1',
    'value.no2': 'NO₂',
    'value.o3': 'O₃',
    'value.co': 'CO',
    'value.so2': 'SO₂',
    'value.nh3': 'NH₃',
    'value.no': 'NO',
    'value.nox': 'NOx',
    'value.temperature': 'Temperature',
    'value.relativeHumidity': 'Relative humidity',
    'value.windSpeed': 'Wind speed',
    'value.windDirection': 'Wind direction',
    'value.intensity': 'Intensity',
    'value.occupancy': 'Occupancy',
    'value.averageVehicleSpeed': 'Average speed',
    'value.averageVehicleLength': 'Average vehicle length',
    'value.averageHeadwayTime': 'Average headway',
    'value.congested': 'Congested',
    'value.laneId': 'Lane',
    'value.laneDirection': 'Lane direction',
    'unit.intensity': 'veh/h',
    'lane.forward': 'forward',
    'lane.backward': 'backward',
    yes: 'Yes',
    no: 'No',
    'fatal.noMap': 'The map library (vendor/maplibre-gl.js) did not load. Run web/scripts/vendor.sh and rebuild iochub. The figures and the alert list still update live.',
    'fatal.noWebGL': 'This browser cannot draw the map (no WebGL): {err}. Live figures still update.',
    'fatal.units': 'Could not load the administrative boundaries: {err}. Retrying…',
  },
};

// The VN_AQI band names come with their colours from aqi_bands.js, which go
// generate writes from internal/aqi.
for (const b of AQI_BANDS) {
  strings.vi[`aqi.band${b.level}`] = b.nameVi;
  strings.en[`aqi.band${b.level}`] = b.nameEn;
}

// Units of the observation values, the same in both languages.
export const valueUnits = {
  pm25: 'µg/m³', pm10: 'µg/m³', pm1: 'µg/m³', no2: 'µg/m³', o3: 'µg/m³', co: 'µg/m³',
  so2: 'µg/m³', nh3: 'µg/m³', no: 'µg/m³', nox: 'µg/m³', temperature: '°C',
  relativeHumidity: '%', windSpeed: 'm/s', windDirection: '°',
  precipitation: 'mm', atmosphericPressure: 'hPa', waterLevel: 'm', alarmLevel1: 'm', alarmLevel2: 'm', alarmLevel3: 'm',
  flow: 'm³/s', conductivity: 'S/m', turbidity: 'NTU', O2: 'mg/L',
  occupancy: '%', averageVehicleSpeed: 'km/h', averageVehicleLength: 'm', averageHeadwayTime: 's',
};

let current = 'vi';
try {
  const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
  if (LANGS.includes(saved)) current = saved;
} catch {
  // localStorage can be denied (private mode, file://); Vietnamese stays.
}

export function lang() {
  return current;
}

// setLang switches the language, remembers it, and re-applies static labels.
export function setLang(l) {
  if (!LANGS.includes(l)) throw new Error(`unknown language ${JSON.stringify(l)}; want one of ${LANGS.join(', ')}`);
  current = l;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, l);
  } catch {
    // Not remembered, but still switched.
  }
  apply(document);
}

// t returns the string for key in the current language, with {name}
// placeholders filled from params; an unknown key falls back to Vietnamese,
// then to the key itself so a gap shows instead of a blank.
export function t(key, params) {
  let s = strings[current][key] ?? strings.vi[key] ?? key;
  if (params) {
    s = s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  }
  return s;
}

// apply fills every element with a data-i18n attribute (its text) or
// data-i18n-title (its title attribute), and the document's title and lang.
export function apply(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-title]')) {
    el.title = t(el.dataset.i18nTitle);
  }
  if (root === document) {
    document.documentElement.lang = current;
    document.title = t('title');
  }
}

// locale is the BCP 47 tag used to format numbers and times.
export function locale() {
  return current === 'vi' ? 'vi-VN' : 'en-GB';
}
