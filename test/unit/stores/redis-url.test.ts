import { maskRedisUrl, redisUrlHasCredential } from '../../../lib/stores/redis-url';

// The migrate command refuses these on its command line and prints them masked. ioredis
// copies every query parameter into its options, so a credential can sit in any of them.
describe('Redis URLs as ioredis reads them', () => {
  test.each([
    ['redis://:s3cret@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['redis://user:s3cret@127.0.0.1:6379/0', 'redis://user:***@127.0.0.1:6379/0'],
    ['rediss://user:s3cret@cache.example:6380', 'rediss://user:***@cache.example:6380'],
    ['//:s3cret@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['127.0.0.1:6379?password=s3cret', 'redis://127.0.0.1:6379?password=***'],
    ['redis://127.0.0.1:6379/?password=s3cret&db=2', 'redis://127.0.0.1:6379/?password=***&db=2'],
    ['redis://127.0.0.1/?sentinelPassword=s3cret&name=mymaster', 'redis://127.0.0.1/?sentinelPassword=***&name=mymaster'],
    ['redis://127.0.0.1/?password=s3cret&password=s3cret-again', 'redis://127.0.0.1/?password=***'],
    ['redis://127.0.0.1/?SENTINEL_PASSWORD=s3cret&authToken=s3cret2', 'redis://127.0.0.1/?SENTINEL_PASSWORD=***&authToken=***'],
    ['/tmp/redis.sock?password=s3cret&db=1', '/tmp/redis.sock?password=***&db=1'],
  ])('%s holds a credential, printed as %s', (url, masked) => {
    expect(redisUrlHasCredential(url)).toBe(true);
    expect(maskRedisUrl(url)).toBe(masked);
    expect(maskRedisUrl(url)).not.toContain('s3cret');
  });

  test.each([
    'redis://127.0.0.1:6379',
    'redis://user@127.0.0.1:6379/0',
    'redis://127.0.0.1:6379/?db=2&family=6&sentinelName=mymaster',
    '/tmp/redis.sock',
    '/tmp/redis.sock?db=1',
  ])('%s holds none and is printed as it is', (url) => {
    expect(redisUrlHasCredential(url)).toBe(false);
    expect(maskRedisUrl(url)).toBe(url);
  });

  test('a URL that cannot be parsed is never printed', () => {
    expect(redisUrlHasCredential('redis://[s3cret')).toBe(false);
    expect(maskRedisUrl('redis://[s3cret')).toBe('(an invalid URL)');
  });
});
