/** Ports of the `npm start` stack, near Supabase CLI's own 5432x range. */
export interface LocalPorts {
  /** The edge runtime: SUPABASE_URL, functions at /functions/v1/<name>. */
  functions: number;
  postgres: number;
  redis: number;
  /** The Upstash REST endpoint: UPSTASH_REDIS_REST_URL. */
  upstash: number;
  /** The ECS RunTask endpoint: AWS_ENDPOINT_URL_ECS. */
  ecs: number;
}

export const DEFAULT_LOCAL_PORTS: LocalPorts = {
  functions: 54321,
  postgres: 54322,
  redis: 54379,
  upstash: 54380,
  ecs: 54390,
};
